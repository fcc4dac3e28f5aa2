use burn::prelude::*;
use std::time::Instant;
use tinycats_models::efficientnet::EfficientNetLite0;
use tinycats_models::Cpu;
fn main() {
    let dev = Default::default();
    let m = EfficientNetLite0::<Cpu>::new(1000, &dev).fold_bn();
    for &(bs, size) in &[(32usize, 224usize)] {
        let x = Tensor::<Cpu, 4>::random([bs, 3, size, size], burn::tensor::Distribution::Default, &dev);
        let _ = m.front(x.clone(), 15).into_data();
        let t = Instant::now();
        for _ in 0..2 { let _ = m.front(x.clone(), 15).into_data(); }
        let dt = t.elapsed().as_secs_f64() / 2.0;
        println!("front(15) bs={bs} size={size}: {:.3}s/batch = {:.1} img/s", dt, bs as f64 / dt);
    }
}
